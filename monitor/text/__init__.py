"""Pure text processing: normalization, language identification, the multilingual gazetteer."""
