#!/usr/bin/env python3
"""Small valid GGUF files as fuzzing seeds (a few KB each, so libFuzzer mutates structure rather
than weights): a 1-layer llama of dim 32 with an 8-token vocabulary and a ChatML template, its
matrices in each legacy block format lowbit reads. Writes fuzz/corpus/gguf/seed-*.gguf."""
import os, random, struct

Q = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
     "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "BF16": (30, 1, 2)}

def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b

def kv(key, t, v):
    out = s(key) + struct.pack("<I", t)
    if t == 4: return out + struct.pack("<I", v)
    if t == 6: return out + struct.pack("<f", v)
    if t == 8: return out + s(v)
    et, items = v
    out += struct.pack("<IQ", et, len(items))
    for it in items:
        out += s(it) if et == 8 else struct.pack({5: "<i", 6: "<f"}[et], it)
    return out

def tensor_bytes(kind, n, rng):
    _, blk, size = Q[kind]
    if kind == "F32": return b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(n))
    if kind in ("F16", "BF16"): return bytes(rng.randrange(256) if i % 2 == 0 else rng.choice([0x3c, 0xbc, 0x38]) for i in range(2 * n))
    out = b""
    for _ in range(n // blk):
        out += struct.pack("<e", 0.01) + (struct.pack("<e", -0.05) if kind in ("Q4_1", "Q5_1") else b"")
        out += bytes(rng.randrange(256) for _ in range(size - len(out) % size if False else size - (4 if kind in ("Q4_1", "Q5_1") else 2)))
    return out

def model(mats, seed):
    rng = random.Random(seed)
    d, vocab = 32, 8
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "a", "b", " "]
    meta = [kv("general.architecture", 8, "llama"), kv("general.name", 8, "seed"),
            kv("llama.embedding_length", 4, d), kv("llama.block_count", 4, 1), kv("llama.feed_forward_length", 4, d),
            kv("llama.attention.head_count", 4, 1), kv("llama.attention.head_count_kv", 4, 1), kv("llama.context_length", 4, 64),
            kv("llama.attention.layer_norm_rms_epsilon", 6, 1e-5), kv("tokenizer.ggml.model", 8, "llama"),
            kv("tokenizer.ggml.tokens", 9, (8, tokens)), kv("tokenizer.ggml.scores", 9, (6, [0.0] * vocab)),
            kv("tokenizer.ggml.token_type", 9, (5, [2, 3, 3, 3, 3, 1, 1, 1])), kv("tokenizer.ggml.bos_token_id", 4, 1),
            kv("tokenizer.ggml.eos_token_id", 4, 4),
            kv("tokenizer.chat_template", 8, "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")]
    tensors = [("token_embd.weight", [d, vocab], mats[0]), ("output_norm.weight", [d], "F32"), ("blk.0.attn_norm.weight", [d], "F32"),
               ("blk.0.ffn_norm.weight", [d], "F32")]
    for i, name in enumerate(["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]):
        tensors.append((f"blk.0.{name}.weight", [d, d], mats[(i + 1) % len(mats)]))
    infos, data = b"", b""
    for name, dims, kind in tensors:
        n = 1
        for x in dims: n *= x
        while len(data) % 32: data += b"\0"
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", x) for x in dims) + struct.pack("<IQ", Q[kind][0], len(data))
        data += tensor_bytes(kind, n, rng)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + infos
    while len(head) % 32: head += b"\0"
    return head + data

out = os.path.join(os.path.dirname(__file__), "..", "corpus", "gguf")
os.makedirs(out, exist_ok=True)
for i, mats in enumerate([["Q8_0", "Q4_1"], ["Q4_0", "Q5_0", "Q5_1"], ["F16", "F32", "BF16"], ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16"]]):
    with open(os.path.join(out, f"seed-{i}.gguf"), "wb") as f:
        f.write(model(mats, i))
print(sorted(os.listdir(out)))
