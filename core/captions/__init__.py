"""The Caption generator's core: vocabulary, the attention captioner's task, decoding and BLEU."""
