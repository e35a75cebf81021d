# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.paths
#####################
Where the plugin's own files are, with no plugin imports: the yaml defaults (``properties/``) and
the shipped datasets, inside the installed package (a wheel) or, for an editable install, where
``setup.py`` maps them from (setuptools' editable finder cannot import nested data packages);
the default ``data_path``; and a file's SHA-256.
"""

import hashlib
import os

PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))


def _shipped(package_name, source_name):
    """``recbole_llm4sbr/<package_name>`` of a wheel, else the folder setup.py's ``package_dir``
    maps it from (next to the package in an editable install)."""
    installed = os.path.join(PACKAGE_DIR, package_name)
    return installed if os.path.isdir(installed) else os.path.join(os.path.dirname(PACKAGE_DIR), source_name)


PROPERTIES_DIR = _shipped("properties", "properties")  # yaml defaults (package data of a wheel)
BUNDLED_DATA_DIR = _shipped("bundled_data", "dataset")  # datasets shipped with the project
DEFAULT_DATA_DIR = "dataset"  # like RecBole's data_path: relative to the working directory


def sha256_file(path):
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
