"""The torch side: compile a spec to a module, export it, benchmark it (torch imported here only)."""
