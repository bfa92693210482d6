#!/usr/bin/env bash
# The packages as a user gets them: packs SnnFunc, SnnFunc.Backends, SnnFunc.CSharp and SnnFunc.Plots (from the
# Release build) into a fresh folder, then restores and runs a fresh C# console application
# (csharp/) and an F# script (fsx/, `#r "nuget: SnnFunc"`) against them, outside the repository
# (none of its build settings apply) and with an empty package cache. The SnnFunc packages may come
# from that folder only (NuGet package source mapping); their dependencies come from the machine's
# NuGet sources. Each consumer prints a gradient and checks it against its closed form; the C# one
# also writes a PNG and an SVG with SnnFunc.Plots (ScottPlot and its native library from NuGet).
# Ends with "packages: N passed, M failed"; exit status 0 when all passed.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props" | head -1)
if ! dotnet pack "$root/SnnFunc.sln" -c Release --no-build -o "$work/feed" -nologo -v q; then
  echo "packages: dotnet pack failed" >&2
  echo "packages: 0 passed, 1 failed"
  exit 1
fi
for id in SnnFunc SnnFunc.Backends SnnFunc.CSharp SnnFunc.Plots; do
  for ext in nupkg snupkg; do
    if [ ! -s "$work/feed/$id.$version.$ext" ]; then
      echo "packages: $id.$version.$ext was not produced" >&2
      failed=$((failed + 1))
    fi
  done
done

# The machine's enabled sources, each allowed every package but SnnFunc's.
sources=$(cd "$work" && dotnet nuget list source --format Short | awk '$1 ~ /^E/ {print $2}')
{
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo '<configuration>'
  echo '  <packageSources>'
  echo '    <clear />'
  echo "    <add key=\"snnfunc-local\" value=\"$work/feed\" />"
  i=0; for s in $sources; do i=$((i + 1)); echo "    <add key=\"source$i\" value=\"$s\" />"; done
  echo '  </packageSources>'
  echo '  <packageSourceMapping>'
  echo '    <packageSource key="snnfunc-local"><package pattern="SnnFunc" /><package pattern="SnnFunc.*" /></packageSource>'
  i=0; for s in $sources; do i=$((i + 1)); echo "    <packageSource key=\"source$i\"><package pattern=\"*\" /></packageSource>"; done
  echo '  </packageSourceMapping>'
  echo '  <config>'
  echo "    <add key=\"globalPackagesFolder\" value=\"$work/packages\" />"
  echo '  </config>'
  echo '</configuration>'
} > "$work/nuget.config"
export NUGET_PACKAGES="$work/packages"

cp -r "$root/tests/packages/csharp" "$work/csharp"
if (cd "$work/csharp" && dotnet run -c Release -p:SnnFuncVersion="$version" -nologo); then
  passed=$((passed + 1))
else
  echo "packages: the C# console application failed" >&2
  failed=$((failed + 1))
fi

mkdir -p "$work/fsx"
sed "s/__VERSION__/$version/" "$root/tests/packages/fsx/gradient.fsx" > "$work/fsx/gradient.fsx"
if (cd "$work/fsx" && dotnet fsi gradient.fsx); then
  passed=$((passed + 1))
else
  echo "packages: the F# script failed" >&2
  failed=$((failed + 1))
fi

# Where the consumers' SnnFunc came from: the folder, not a cache or another source.
for id in snnfunc snnfunc.csharp snnfunc.plots; do
  meta="$work/packages/$id/$version/.nupkg.metadata"
  if ! grep -q "$work/feed" "$meta" 2>/dev/null; then
    echo "packages: $id $version was not restored from the packed folder ($meta)" >&2
    failed=$((failed + 1))
  fi
done

echo "packages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
