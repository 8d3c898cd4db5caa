"""Runtime. Search by image: vector search, then spatial verification of the nearest hits."""
