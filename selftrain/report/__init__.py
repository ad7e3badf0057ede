"""Tables, figures, observations and the rendered report of a study."""

# The report's figures, in the order they appear.
FIGURES = (
    "f1_per_iteration",
    "f1_vs_size",
    "time_vs_size",
    "pseudo_label_precision",
    "selection_mix",
    "confusion_matrix",
    "test_examples",
)
