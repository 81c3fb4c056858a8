"""Personal model training (Servia-Rodriguez et al., IoTDI 2018) on MotionSense."""
