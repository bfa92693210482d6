/// W1 against its PyTorch peer: the same weights, inputs and labels go to bench/peers/torch_w1.py
/// through .npy files; SnnFunc's fused and generic W1 losses must match PyTorch's loss within 1e-4
/// and its gradients within 1e-3 (relative); the same for the TorchSharp peer
/// (bench/peers/torchsharp_w1). Both peers are optional: without /usr/bin/python3 (or
/// $SNNFUNC_PYTHON) and torch, or without the TorchSharp peer's build output, a test passes after
/// writing a SKIP message (xunit 2 has no dynamic skip).
namespace SnnFunc.Tests

open System
open System.Diagnostics
open System.IO
open Xunit
open Xunit.Abstractions
open SnnFunc

type W1PeerTests(output: ITestOutputHelper) =

    /// Debian's python3 (with python3-torch); SNNFUNC_PYTHON overrides it.
    static let python =
        match Environment.GetEnvironmentVariable "SNNFUNC_PYTHON" with
        | null
        | "" -> "/usr/bin/python3"
        | p -> p

    /// The repository root: the first ancestor of the test assembly's folder holding SnnFunc.sln.
    static let repoRoot () =
        let rec up (dir: DirectoryInfo) =
            if isNull dir then
                None
            elif File.Exists(Path.Combine(dir.FullName, "SnnFunc.sln")) then
                Some dir.FullName
            else
                up dir.Parent

        up (DirectoryInfo AppContext.BaseDirectory)

    static let runProcess (exe: string) (args: string list) =
        let psi =
            ProcessStartInfo(exe, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)

        args |> List.iter psi.ArgumentList.Add
        use p = Process.Start psi
        let stdout = p.StandardOutput.ReadToEndAsync()
        let stderr = p.StandardError.ReadToEndAsync()

        if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then
            p.Kill true
            failwithf "%s %A timed out" exe args

        p.ExitCode, stdout.Result, stderr.Result

    member private _.Skip(reason: string) =
        let message = $"SKIP W1 peer comparison: %s{reason}"
        output.WriteLine message
        Console.WriteLine message

    /// Writes W1's inputs and weights, runs `peer check DIR` (exe and its leading arguments), and
    /// compares SnnFunc's fused and generic losses and gradients with the peer's files.
    member private _.CompareWith (peerName: string) (exe: string) (peerArgs: string list) =
        let dir =
            Path.Combine(Path.GetTempPath(), "snnfunc-w1-peer-" + Guid.NewGuid().ToString "N")

        Directory.CreateDirectory dir |> ignore

        try
            let x, labels = W1Bench.makeInput 1
            let w1, w2 = W1Bench.initWeights 2L
            TensorIo.saveNpy (Path.Combine(dir, "x.npy")) x
            TensorIo.saveNpy (Path.Combine(dir, "labels.npy")) (Tensor.FromArray(Array.map float labels, labels.Length))
            TensorIo.saveNpy (Path.Combine(dir, "w1.npy")) w1
            TensorIo.saveNpy (Path.Combine(dir, "w2.npy")) w2
            let code, out, err = runProcess exe (peerArgs @ [ "check"; dir ])
            Assert.True((code = 0), $"%s{peerName} check failed (%d{code}):\n%s{out}\n%s{err}")
            output.WriteLine(out.Trim())

            let load name =
                TensorIo.loadNpy (Path.Combine(dir, name))

            let peerLoss = (load "loss.npy").ToScalar()
            let t1, t2 = load "g1.npy", load "g2.npy"
            Assert.True(abs (peerLoss - 2.2) < 0.5, $"%s{peerName} loss %g{peerLoss}: not W1's initial loss")

            for name, loss in [ "fused", W1Bench.lossFused x labels; "generic", W1Bench.lossGeneric x labels ] do
                let l, (g1, g2) = Ad.valueAndGrad loss (w1, w2)
                let l = l.ToScalar()
                output.WriteLine $"%s{name}: loss %.7f{l} (%s{peerName} %.7f{peerLoss})"

                Assert.True(abs (l - peerLoss) <= 1e-4 * abs peerLoss, $"%s{name} loss %.8g{l} vs %s{peerName} %.8g{peerLoss}")

                for what, (g: Tensor), (t: Tensor) in [ "dL/dW1", g1, t1; "dL/dW2", g2, t2 ] do
                    Assert.Equal<int[]>(t.Shape, g.Shape)
                    let gv, tv = g.ToDoubleArray(), t.ToDoubleArray()
                    SnnCheck.assertNormClose $"%s{name} %s{what}" 1e-3 tv gv
                    let scale = tv |> Array.map abs |> Array.max

                    SnnCheck.assertAllClose $"%s{name} %s{what} (elementwise, relative to the largest entry)" 0.0 (1e-3 * scale) tv gv
        finally
            Directory.Delete(dir, true)

    [<Fact>]
    member this.``W1: fused and generic SnnFunc match PyTorch in loss (1e-4) and gradients (1e-3)``() =
        match repoRoot () with
        | None -> this.Skip "repository root (SnnFunc.sln) not found above the test assembly"
        | Some _ when not (File.Exists python) -> this.Skip $"%s{python} not found"
        | Some root ->
            match runProcess python [ "-c"; "import torch, numpy" ] with
            | code, _, err when code <> 0 -> this.Skip $"torch or numpy cannot be imported by %s{python}: %s{err.Trim()}"
            | _ -> this.CompareWith "torch_w1.py" python [ Path.Combine(root, "bench", "peers", "torch_w1.py") ]

    [<Fact>]
    member this.``W1: fused and generic SnnFunc match the TorchSharp peer in loss (1e-4) and gradients (1e-3)``() =
        // The peer is built (and its native library patched) by bench/peers/run_w1_all.sh, never by
        // CI: without its build output the test passes after a SKIP message.
        match repoRoot () with
        | None -> this.Skip "repository root (SnnFunc.sln) not found above the test assembly"
        | Some root ->
            let peer =
                Path.Combine(root, "bench", "peers", "torchsharp_w1", "bin", "Release", "net10.0", "torchsharp_w1.dll")

            if not (File.Exists peer) then
                this.Skip $"%s{peer} not built (bash bench/peers/run_w1_all.sh builds it)"
            else
                // A check of a missing folder loads libtorch first: a build the script has not patched
                // fails there on Debian 12's libstdc++ (TorchSharp's message does not name the version).
                match runProcess "dotnet" [ peer; "check"; Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString "N") ] with
                | _, _, err when err.Contains "Failed to load native component" ->
                    this.Skip
                        "the peer cannot load libtorch (on Debian 12 its native library needs the patch of bash bench/peers/run_w1_all.sh)"
                | _ -> this.CompareWith "torchsharp_w1" "dotnet" [ peer ]
