"""Print the GraphQL SDL: `python -m schema.export > schema.graphql`."""

from pim.settings import Settings
from schema import export_sdl

if __name__ == "__main__":
    print(export_sdl(Settings()), end="")
