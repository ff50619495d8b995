"""Hugging Face's own tokenizers library on a tokenizer.json: the ids of each text (specials in the
text matched, none added), as the reference for lowbit's reading of the same file.

usage: hf_tokenizers_encode.py TOKENIZER_JSON TEXTS_JSON  ->  JSON list of id lists on stdout
"""
import json
import sys

import tokenizers

tok = tokenizers.Tokenizer.from_file(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    texts = json.load(f)
print(json.dumps([tok.encode(t, add_special_tokens=False).ids for t in texts]))
