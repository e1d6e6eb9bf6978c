{
  description = "etcflip: /etc as a pure function of the configuration, switched atomically";

  # etcflip needs Rust >= 1.88 (the workspace's rust-version) and lib.fileset: nixpkgs 25.11 or
  # later. No flake.lock is committed (it cannot be made offline); the first `nix flake` command
  # on a machine with network writes one.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # Only what is asked for is evaluated: outputs that need no nixpkgs (`lib`,
      # `nixosModules`) can be evaluated without fetching it (tests/nix.rs does).
      forEachSystem =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f nixpkgs.legacyPackages.${system};
          }) systems
        );
    in
    {
      # The pure conversion from NixOS options to an etcflip spec (builtins only).
      lib = import ./nixos/spec.nix;

      # An attribute set that imports the file (not the bare path, which `nix flake check`
      # refuses on older Nix), so that errors still name nixos/module.nix.
      nixosModules.default = {
        imports = [ ./nixos/module.nix ];
      };

      packages = forEachSystem (pkgs: {
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.etcflip;
        etcflip = pkgs.callPackage ./nixos/package.nix { };
      });

      checks = forEachSystem (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.etcflip;
        vm = pkgs.testers.runNixOSTest (import ./nixos/tests/vm.nix { module = self.nixosModules.default; });
      });

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            systemd # systemd-tmpfiles
            strace # tests/regressions.rs
            perl # tests/locks.rs (a lock taken as lckpwdf takes it)
            python3 # examples and benchmark
            gcc # the benchmark's floor program
            squashfsTools
            erofs-utils
          ];
          # Where libc.a is, for the benchmark's static build (examples/bench/bench.sh); not in
          # buildInputs, whose -L would make every dynamic link pick it (nixpkgs issue 59267).
          ETCFLIP_STATIC_LIBC = "${pkgs.glibc.static}/lib";
        };
      });
    };
}
