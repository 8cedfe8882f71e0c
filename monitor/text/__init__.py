"""Pure text processing: normalization, language identification."""
