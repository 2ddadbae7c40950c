"""The GitHub issue summarization example's model and data: issues in the seed's CSV layout
(``issue_url``, ``issue_title``, ``body``), offline demo issues made from installed package
metadata, the text cleaning the model and its server share, vocabularies fitted without
TensorFlow, and a small sequence-to-sequence model that writes an issue's title from its body
and is exported as a SavedModel taking raw text. ``data`` and ``text`` need only the standard
library; ``model`` needs the ``train`` extra (TensorFlow)."""
