"""Importing photos: scanning, hashing, EXIF, thumbnails, encounter grouping."""
