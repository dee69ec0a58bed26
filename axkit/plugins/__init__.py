"""The plugins bundled with axkit, one module each."""
