"""Image files: reading any image the way a viewer shows it and writing results in the format it came
in (`image_io`), with a 16-bit PNG codec Pillow lacks (`png16`). Used by the commands; no torch
model code here."""
