"""The CI latency gate (``hwnas ci-check``): fail on a real regression, stay quiet on machine noise.

One module per concern, each importing only those above it in this list:

* ``stats``     Hodges-Lehmann ratio estimates, bootstrap + rank intervals, Holm, verdict rules, suite mean
* ``gates``     exact MACs / params / size / op-count gates counted from ONNX / TFLite files
* ``ab``        A/B measurement: two long-lived workers, randomised ABBA rounds, on a local DeviceProfile
* ``baseline``  stored baselines (same machine only) and the calibrated noise file
* ``inputs``    model files, directories, arch strings; pairing with files, directories or git refs
* ``check``     ``run_check`` -> ``CheckReport`` of ``ModelResult``; verdict and exit code
* ``reports``   JSON, JUnit XML and Markdown writers (no printing: the CLI prints)
* ``calibrate`` A/A comparisons: each model's noise

Nothing is imported here, so ``import hwnas.ci.stats`` stays light.
"""
