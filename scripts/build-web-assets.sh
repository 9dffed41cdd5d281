#!/usr/bin/env bash
# Rebuilds pim/static/ (the JavaScript and CSS of /docs and GraphiQL) from npm packages
# at pinned versions, so that the pages work where browsers cannot reach a CDN. The
# committed files are what the Python package serves; run this (`make web-assets`)
# only to change a version, then commit the result.
set -euo pipefail

GRAPHIQL=3.8.3        # the last GraphiQL with a browser (UMD) build; 4+ ships ES modules only
REACT=18.3.1          # GraphiQL 3 wants React 18; React 19 has no UMD build
SWAGGER_UI=5.32.0
ESBUILD=0.25.12       # minifies GraphiQL's bundle (published unminified, 3.5 MB → 1.5 MB)

out="$(cd "$(dirname "$0")/.." && pwd)/pim/static"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# npm checks each tarball against the registry's integrity hash.
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" \
  "swagger-ui-dist@$SWAGGER_UI" >/dev/null
for tarball in *.tgz; do
  mkdir "${tarball%.tgz}"
  tar xzf "$tarball" -C "${tarball%.tgz}"
done
npm install --silent --no-save --no-audit --no-fund "esbuild@$ESBUILD" >/dev/null
esbuild=node_modules/.bin/esbuild

rm -rf "$out/graphiql" "$out/swagger-ui"
mkdir -p "$out/graphiql" "$out/swagger-ui"

g="graphiql-$GRAPHIQL/package"
# The licenses of the libraries bundled into GraphiQL go to graphiql.min.js.LEGAL.txt.
"$esbuild" "$g/graphiql.min.js" --minify --legal-comments=external --log-level=error \
  --outfile="$out/graphiql/graphiql.min.js"
"$esbuild" "$g/graphiql.min.css" --minify --log-level=error \
  --outfile="$out/graphiql/graphiql.min.css"
cp "$g/LICENSE" "$out/graphiql/LICENSE.graphiql"
cp "react-$REACT/package/umd/react.production.min.js" "$out/graphiql/"
cp "react-$REACT/package/LICENSE" "$out/graphiql/LICENSE.react"
cp "react-dom-$REACT/package/umd/react-dom.production.min.js" "$out/graphiql/"
cp "react-dom-$REACT/package/LICENSE" "$out/graphiql/LICENSE.react-dom"

s="swagger-ui-dist-$SWAGGER_UI/package"
# Without their source-map comments: browsers would ask for .map files we do not ship.
sed '/^\/\/# sourceMappingURL=/d' "$s/swagger-ui-bundle.js" > "$out/swagger-ui/swagger-ui-bundle.js"
sed 's|/\*# sourceMappingURL=[^*]*\*/||' "$s/swagger-ui.css" > "$out/swagger-ui/swagger-ui.css"
cp "$s/swagger-ui-bundle.js.LICENSE.txt" "$s/LICENSE" "$s/NOTICE" "$s/favicon-32x32.png" \
  "$out/swagger-ui/"

cat > "$out/VERSIONS" <<VERSIONS
graphiql $GRAPHIQL (minified with esbuild $ESBUILD)
react $REACT
react-dom $REACT
swagger-ui-dist $SWAGGER_UI
VERSIONS
echo "pim/static rebuilt:"
du -sh "$out"/*
