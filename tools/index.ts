// The CLI's reusable pieces for the library entry (index.ts): the comparison document and the
// report printers. Nothing below tools/ imports this.
export { COMPARE_SCHEMA, compareDoc, compareDocSchema, formatCompare, formatReport } from './report.js';
export type { CompareDoc } from './report.js';
export { documents as documentSchemas, generateSchemas, jsonSchemaText } from './schemas.js';
