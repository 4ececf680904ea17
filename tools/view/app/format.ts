// Numbers and addresses as the page prints them.

export const fmt = (n: number): string => n.toLocaleString('en-US');

/** An address shortened to its last 8 hex digits ("…80a01040"); the full one goes in a title. */
export function shortAddr(hex: string): string {
  return hex.length > 12 ? `…${hex.slice(-8)}` : hex;
}

/** A zone's name as it appears in data-testid attributes: [A-Za-z0-9_.-], anything else as "_". */
export const zoneId = (name: string): string => name.replace(/[^A-Za-z0-9_.-]/g, '_');
