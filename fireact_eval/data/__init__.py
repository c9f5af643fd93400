"""FireAct's data stage: training examples in one format, FireAct's released files in,
decontamination against every evaluation set we ship, mixing, and a report per file."""
