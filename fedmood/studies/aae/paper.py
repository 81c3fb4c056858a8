"""The anonymising autoencoder paper's numbers (Malekzadeh et al., IoTDI 2019) and its method names."""

#: The paper's Table 2: activity macro-F1 (mean), identity accuracy, identity macro-F1 (percent).
PAPER_TABLE2 = {
    "raw": (92.51, 96.20, 95.90),
    "resample_10hz": (91.11, 31.08, 25.57),
    "resample_5hz": (88.02, 13.53, 8.86),
    "ssa_12": (88.59, 34.13, 28.59),
    "ssa_1": (87.41, 16.07, 12.58),
    "rep": (91.47, 15.92, 11.25),
    "aae": (92.91, 6.98, 1.76),
}
LABELS = {
    "raw": "Raw data",
    "resample_10hz": "Resampling 10 Hz",
    "resample_5hz": "Resampling 5 Hz",
    "ssa_12": "SSA (components 1, 2)",
    "ssa_1": "SSA (component 1)",
    "rep": "REP (latent only)",
    "aae": "AAE",
    "aae_federated": "AAE, federated",
}
