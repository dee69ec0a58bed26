"""Example plugins, small enough to read in one go (loaded by dotted path:
``Plugin axkit.examples.sqlite_lookup.SQLiteLookup``)."""
