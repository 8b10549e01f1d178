"""Real-GIMP 3 end-to-end tests of the plug-in (a package, so its conftest does not shadow tests/conftest.py)."""
