from setuptools import find_packages, setup

setup(
    name="epum",
    version="0.1.0",
    description="Elastic processing unit manager: keeps domains of cloud instances at size",
    packages=find_packages(include=["epum", "epum.*"]),
    python_requires=">=3.10",
    install_requires=[
        "kazoo>=2.9",
        "kombu>=5.3",
        "PyYAML>=6.0",
        "requests>=2.28",
        "boto3>=1.26",
        "prometheus-client>=0.17",
    ],
    extras_require={
        "statsd": ["statsd>=4.0"],
        "plot": ["matplotlib"],  # epum replay --plot
        "test": [
            "pytest>=7",
            "ruff",
            "statsd>=4.0",
            "import-linter>=2.0",
            "moto[server]>=5.0",
            "prometheus-client>=0.17",
            "hypothesis>=6",
        ],
    },
    entry_points={
        "console_scripts": [
            "epum=epum.cli:epum_main",
            "epum-worker=epum.cli:worker_main",
            "epum-sim-provisioner=epum.sim.provisioner:main",
            "epumctl=epum.cli:ctl_main",
        ]
    },
)
