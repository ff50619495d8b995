// The recent window of the 4- and 3-bit caches (after KIVI's full-precision residual): a query
// reads the keys and values of its last R positions (itself included) in f16, as they were before
// they were coded, and older ones from the codes. Those exact copies are in one of two places:
// the step's own positions in `stage` ([m, 2, kv_dim / 2] f16 pairs, written by rope_store.wgsl),
// earlier ones in the layer's ring after its codes (`kv` from word `at`: [slots, 2, kv_dim / 2]
// f16 pairs, then [slots] tags, position + 1, written by kv_recent.wgsl after each step's
// attention). A ring slot whose tag is not the position (overwritten since: a cache rolled back by
// more than its spare slots) leaves that position to its codes. Composed after a kv_*.wgsl and
// step.wgsl; the kernel declares `stage`. As reference::Recent.

struct Recent {
    r: u32,     // positions a query reads exactly (0: none)
    slots: u32, // the ring's slots
    at: u32,    // the ring's first word in the layer's cache
    kvd: u32,   // kv_heads · head_dim
}

const NOT_EXACT: u32 = 0xffffffffu;
const IN_STAGE: u32 = 0x80000000u;

// Where the exact copy of position j's keys (is_v 0) or values (1) lies, from kv head offset off
// (kvh · head_dim / 2 words), for a query at position pos: a word of `stage` (IN_STAGE set) or of
// the cache; NOT_EXACT where the query reads the codes.
fn exact_at(w: Recent, j: u32, pos: u32, off: u32, is_v: u32) -> u32 {
    if (w.r == 0u || j + w.r <= pos) { return NOT_EXACT; }
    let half = w.kvd / 2u;
    if (j >= step.pos0) { return IN_STAGE | (((j - step.pos0) * 2u + is_v) * half + off); }
    let slot = j % w.slots;
    if (kv[w.at + w.slots * w.kvd + slot] != j + 1u) { return NOT_EXACT; }
    return w.at + (slot * 2u + is_v) * half + off;
}

// Exact values d .. d + 4 (d even) from exact_at's word e.
fn exact4(e: u32, d: u32) -> vec4<f32> {
    let i = e + d / 2u;
    if ((e & IN_STAGE) != 0u) {
        let s = i & ~IN_STAGE;
        return vec4<f32>(unpack2x16float(stage[s]), unpack2x16float(stage[s + 1u]));
    }
    return vec4<f32>(unpack2x16float(kv[i]), unpack2x16float(kv[i + 1u]));
}

// Key values d .. d + 4: exact (e from exact_at) or decoded from cache value i.
fn key4(e: u32, i: u32, d: u32) -> vec4<f32> {
    if (e == NOT_EXACT) { return kv_load4(i); }
    return exact4(e, d);
}

// Value values d .. d + 8: exact or decoded from cache value i.
fn value8(e: u32, i: u32, d: u32) -> W8 {
    if (e == NOT_EXACT) { return kv_load8(i); }
    return W8(exact4(e, d), exact4(e, d + 4u));
}
