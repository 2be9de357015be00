"""The plugin template that ``hicli new`` renders (importable as ``hisci.plugin_template``).

This file only marks the folder as a package, so that ``importlib.resources`` finds the
template in an installed hisci; it is not copied. Every other file is rendered with
:class:`string.Template` (``$name``, ``${title}``; a literal dollar sign is written ``$$``),
the folder ``__plugin__`` becomes the plugin's package folder, ``gitignore`` becomes
``.gitignore`` and a ``.tmpl`` suffix (on files that are not valid Python before rendering)
is dropped. The placeholders are listed in ``hicli/cmd_author.py`` (``placeholders``).
"""
