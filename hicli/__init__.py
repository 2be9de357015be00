"""hicli: the hisci command line."""
