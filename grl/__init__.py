"""GRL: Global-guided Reciprocal Learning for video-based person re-identification (CVPR 2021).

A small, tested reproduction: ``grl.data`` (datasets, synthetic data, sampling),
``grl.models`` (GCE, EMU, TRL), ``grl.losses`` (OIM, verification), ``grl.engine``
(training, feature extraction), ``grl.evaluation`` (CMC, mAP), ``grl.experiments``
(the catalogue of Tables 1-6) and ``grl.viz`` (figures).
"""

from grl.config import Config, ConfigError

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "__version__"]
