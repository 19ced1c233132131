"""Stage 1, the user's data: discovery of ImageFolder trees and manifests, decoding into the decode cache,
validation findings, class alignment, the reference train/val/test split, and `inspect`'s report."""
