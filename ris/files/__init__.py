"""Runtime. Image files: ids and names, which files may be read, change detection, scanning."""
