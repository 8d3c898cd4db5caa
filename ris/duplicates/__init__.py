"""Duplicate groups: every set of near-duplicate images in a collection (`query duplicates`,
`GET /duplicates`)."""
