"""The anonymising autoencoder (Malekzadeh et al., IoTDI 2019) for motion-sensor windows."""
