// kmemu vmstat: the booted kernel's UMA zones and malloc types as vmstat(8) prints them; with
// the vmem backend, vmem's own zones among them.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, kmemu } from './built-cli.js';

beforeAll(() => buildOnce(), 300_000);

describe('kmemu vmstat', () => {
  it('-z lists the zones boot made; vmem\'s appear only when the kernel boots with vmem', () => {
    const plain = kmemu(['vmstat', '-z', '--cpus', '2']);
    expect(plain.status).toBe(0);
    expect(plain.stdout.split('\n')[0]).toBe('ITEM                   SIZE  LIMIT     USED     FREE      REQ FAIL SLEEP');
    expect(plain.stdout).toContain('\nUMA Kegs:               208,      0,      17,       0,      17,   0,   0\n');
    expect(plain.stdout).not.toContain('vmem');
    const vmem = kmemu(['vmstat', '-z', '--cpus', '2', '--tunable', 'vm.kmem_backend=vmem']);
    expect(vmem.status).toBe(0);
    // vmem_startup's zones: arenas (the kernel's two are static, so none is used) and the
    // boundary tags, BT_MAXALLOC preallocated and some taken by the kernel arenas' spans.
    expect(vmem.stdout.split('\n').slice(-3)).toEqual([
      'vmem:                  1792,      0,       0,       0,       0,   0,   0',
      'vmem btag:               56,      0,      10,      61,      10,   0,   0',
      '',
    ]);
  });

  it('--json gives the rows; -m the malloc types; without -z or -m it says what it expects', () => {
    const json = JSON.parse(kmemu(['vmstat', '-z', '-m', '--json', '--tunable', 'vm.kmem_backend=vmem']).stdout) as {
      vmstatZ: { name: string; size: number; used: number }[]; vmstatM: { type: string }[];
    };
    expect(json.vmstatZ.find((r) => r.name === 'vmem btag')).toMatchObject({ size: 56 });
    expect(json.vmstatM.length).toBeGreaterThan(0);
    const m = kmemu(['vmstat', '-m']);
    expect(m.stdout.split('\n')[0]).toBe('         Type InUse MemUse HighUse Requests  Size(s)');
    const none = kmemu(['vmstat']);
    expect([none.status, none.stderr]).toEqual([2, 'kmemu: vmstat: expected -z, -m or both\n']);
    const bad = kmemu(['vmstat', '-z', '--tunable', 'vm.kmem_backend=slab']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('kmemu: --tunable vm.kmem_backend=slab: vm.kmem_backend takes "kmem_alloc3" or "vmem", not "slab"\n');
  });
});
