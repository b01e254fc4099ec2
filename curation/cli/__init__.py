"""The `curate` command line: thin commands over library functions."""
