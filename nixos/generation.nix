# One etcflip generation: `etcflip-gen build` over a spec (an attribute set, see spec.nix).
# The spec is written with writeText, not builtins.toFile, because its sources are build
# outputs (store paths with context), which builtins.toFile refuses.
{
  runCommandLocal,
  writeText,
  etcflip,
  spec,
}:
runCommandLocal "etcflip-generation" { } ''
  ${etcflip}/bin/etcflip-gen build --spec ${writeText "etcflip-spec.json" (builtins.toJSON spec)} --out "$out"
''
