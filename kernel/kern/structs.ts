// The layouts of the VM's structures in emulated memory, field for field as DragonFly declares
// them where the modeled code reads them (kernel/UPSTREAM.md §2–§5), LP64.

import { embed, struct } from './struct.js';
import { lock, lwkt_token, spinlock } from './sync.js';

/** struct vm_page. Deviation: `hnext` chains the page in the (object, pindex) hash that
 * stands in for upstream's per-object RB tree; the RB links are kept for the layout. */
export const vm_page = struct('vm_page', [
  ['pageq_next', 'ptr'], // TAILQ_ENTRY pageq: the free/active/inactive queue
  ['pageq_prev', 'ptr'],
  ['rb_left', 'ptr'],
  ['rb_right', 'ptr'],
  ['hnext', 'ptr'],
  ['rb_color', 'u32'],
  ['object', 'ptr'],
  ['pindex', 'u64'],
  ['phys_addr', 'u64'],
  ['md_pv_list_first', 'ptr'], // struct md_page
  ['md_pv_list_last', 'ptr'],
  ['queue', 'u16'],
  ['pc', 'u16'],
  ['act_count', 'u8'],
  ['busy', 'u8'],
  ['pat_mode', 'u8'],
  ['unused02', 'u8'],
  ['flags', 'u32'],
  ['wire_count', 'u32'],
  ['hold_count', 'u32'],
  ['valid', 'u8'],
  ['dirty', 'u8'],
  ['ku_pagecnt', 'u32'],
]);

/** struct vmstats: the page counts and thresholds of vm_meter, in one cache line. */
export const vmstats = struct('vmstats', [
  ['v_page_count', 'u32'],
  ['v_free_count', 'u32'],
  ['v_wire_count', 'u32'],
  ['v_active_count', 'u32'],
  ['v_inactive_count', 'u32'],
  ['v_cache_count', 'u32'],
  ['v_free_reserved', 'u32'],
  ['v_free_min', 'u32'],
  ['v_free_target', 'u32'],
  ['v_free_severe', 'u32'],
  ['v_interrupt_free_min', 'u32'],
  ['v_pageout_free_min', 'u32'],
  ['v_cache_min', 'u32'],
]);

/**
 * struct vmmeter: the event counters each CPU keeps for itself (DragonFly's mycpu->gd_cnt), in
 * its globaldata page at GD_CNT_OFFSET; sysctl sums them over the CPUs.
 */
export const vmmeter = struct('vmmeter', [
  ['v_tfree', 'u32'],
  ['v_zfod', 'u32'],
  ['v_pdwakeups', 'u32'],
]);

/** The free queue (upstream has 256 coloured PQ_FREE queues; we keep one). */
export const vpgqueue = struct('vpgqueues', [
  ['pl_first', 'ptr'],
  ['pl_last', 'ptr'],
  ['lcnt', 'u32'],
  ['flipflop', 'u32'],
  ['spin', embed(spinlock)],
]);

export const vm_object = struct('vm_object', [
  ['object_list_next', 'ptr'],
  ['object_list_prev', 'ptr'],
  ['rb_memq', 'ptr'],
  ['generation', 'u32'],
  ['size', 'u64'],
  ['ref_count', 'u32'],
  ['shadow_count', 'u32'],
  ['type', 'u8'],
  ['flags', 'u16'],
  ['pg_color', 'u16'],
  ['resident_page_count', 'u32'],
  ['token', embed(lwkt_token)],
]);

export const vm_map_entry = struct('vm_map_entry', [
  ['prev', 'ptr'],
  ['next', 'ptr'],
  ['rb_left', 'ptr'],
  ['rb_right', 'ptr'],
  ['rb_parent', 'ptr'],
  ['rb_color', 'u32'],
  ['start', 'u64'],
  ['end', 'u64'],
  ['aux', 'u64'],
  ['object', 'ptr'], // vm_object, or the sub_map of a VM_MAPTYPE_SUBMAP entry
  ['offset', 'u64'],
  ['eflags', 'u32'],
  ['maptype', 'u8'],
  ['protection', 'u8'],
  ['max_protection', 'u8'],
  ['inheritance', 'u8'],
  ['wired_count', 'u32'],
]);

/** struct vm_map; min_offset and max_offset are header.start and header.end. */
export const vm_map = struct('vm_map', [
  ['header', embed(vm_map_entry)],
  ['rb_root', 'ptr'],
  ['lock', embed(lock)],
  ['nentries', 'u32'],
  ['size', 'u64'],
  ['system_map', 'u8'],
  ['hint', 'ptr'],
  ['timestamp', 'u32'],
  ['first_free', 'ptr'],
  ['flags', 'u32'],
  ['pmap', 'ptr'],
  ['token', embed(lwkt_token)],
]);


export const pmap = struct('pmap', [
  ['pm_pml4', 'ptr'],
  ['pm_count', 'u32'],
  ['pm_active', 'u64'],
  ['pm_token', embed(lwkt_token)],
]);
