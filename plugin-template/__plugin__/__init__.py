"""$title ($name): a hisci plugin. This folder is the plugin; see README.md."""
