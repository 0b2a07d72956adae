"""Milvus: the shared connection and collection helper, the curated corpus, the answer cache."""
