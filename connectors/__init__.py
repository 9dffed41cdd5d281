"""Commerce platform clients: one module per platform behind one interface (connectors.base).

`connectors.base.PLATFORMS` names every platform and the module of its adapter, which is
imported only when that platform is used (`adapter_for`); each module registers its
adapter class in `ADAPTERS` when imported.
"""
