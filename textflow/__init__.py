"""textflow: continuous text diffusion for sampler research (README.md, docs/)."""


def __getattr__(name: str):
    if name == "load_pretrained":  # lazy: importing textflow stays cheap
        from textflow.export import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'textflow' has no attribute {name!r}")
