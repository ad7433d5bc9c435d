"""Ingestion (loaders, chunking), embeddings, the vector and lexical indexes, and hybrid retrieval."""
