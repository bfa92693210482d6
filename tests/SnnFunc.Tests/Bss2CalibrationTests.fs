/// The BrainScaleS-2 emulator's calibration: it trims a chip's spreads to the reference table's
/// calibrated figures with the realised parameters centred on the targets, its measurements read
/// the circuits' deviations through the observables, a saved trim loads back and only onto its
/// chip, unreachable targets fail with the parameter named, and it is deterministic.
module SnnFunc.Tests.Bss2CalibrationTests

open System
open System.IO
open Xunit
open SnnFunc
open SnnFunc.Backends
open SnnFunc.Tests.TestUtil

let private targets = CalibrationTargets.defaults
let private chip = Chip.create 1L
let private key = Random.key 7L

/// One calibration of chip 1, shared by the tests that read it (it takes seconds).
let private calibrated = lazy (Calibration.calibrate chip targets key)

let private std (xs: float[]) =
    let m = Array.average xs
    sqrt (xs |> Array.averageBy (fun x -> (x - m) * (x - m)))

/// The realised deviation of every parameter over the 512 circuits of a graph at the targets'
/// values: relative for the time constants, CADC codes for the voltages.
let private realisedDeviations (trim: Trim) =
    let spec = CalibrationTargets.lifSpec targets Snn.Lif.defaults

    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "n" 512 (Neuron.lif spec)
        |> Graph.connect "x" "n" (Projection.dense Init.zeros)

    let p = Graph.initAs Float64 (Random.key 0L) g
    let r = Bss2Emulator(chip, trim, Bss2Config.defaults).Realised(g, p)["n"]
    let relative (target: float) = Array.map (fun v -> v / target - 1.0)

    let codes (target: float) =
        Array.map (fun v -> (v - target) * Bss2Figures.cadcPerUnit)

    Map
        [
            CircuitParameter.TauMem, relative spec.TauMem r.TauMem
            CircuitParameter.TauSyn, relative spec.TauSyn r.TauSyn
            CircuitParameter.Leak, codes spec.VLeak r.VLeak
            CircuitParameter.Threshold, codes spec.VTh r.VTh
            CircuitParameter.Reset, codes spec.VReset r.VReset
        ]

[<Fact>]
let ``calibrating chip 1 brings every spread to the calibrated figure, centred on the targets`` () =
    let before = realisedDeviations Chip.untrimmed
    let after = realisedDeviations calibrated.Value

    for k in Chip.parameters do
        let name = Chip.parameterName k
        let figure = Chip.spreadOf Bss2Figures.calibrated k
        let spread, uncalibrated = std after[k], std before[k]
        let mean = Array.average after[k]
        // The finite trim step leaves a residual of the calibrated figure's spread (Chip.trimStep);
        // measurement errors that pick a neighbouring code would widen it.
        Assert.True(
            abs (spread / figure - 1.0) < 0.25,
            $"%s{name}: spread %.4g{spread} after calibration, the calibrated figure is %.4g{figure}"
        )
        // calix's own hardware test criterion (bss2.md 2.1).
        Assert.True(spread < 0.3 * uncalibrated, $"%s{name}: spread %.4g{spread} is not below 30 %% of the uncalibrated %.4g{uncalibrated}")
        // The mean of 512 residuals has a standard error of ~4.5 % of the figure; a biased
        // measurement shifts it.
        Assert.True(abs mean < 0.25 * figure, $"%s{name}: mean deviation %.4g{mean} after calibration (figure %.4g{figure})")

    Assert.Equal(Some chip.Seed, calibrated.Value.ChipSeed)
    Assert.Equal(Some targets, calibrated.Value.Targets)

[<Fact>]
let ``the probes read each circuit's deviation to a fraction of a trim step`` () =
    // The measurements at the calibrated trim against the deviations they are not allowed to
    // read: a test's view of how well the observables carry them.
    let trim = calibrated.Value

    for k in Calibration.order do
        let measured = CalibrationProbes.measure k chip trim targets (Random.key 99L)
        let truth = Array.init 512 (fun c -> Chip.deviation chip trim k c)
        let error = Array.map2 (-) measured truth
        let step = Chip.trimStep k
        let name = Chip.parameterName k
        Assert.True(std error < 0.2 * step, $"%s{name}: measurement error std %.4g{std error}, trim step %.4g{step}")

        Assert.True(abs (Array.average error) < 0.05 * step, $"%s{name}: measurement bias %.4g{Array.average error}, trim step %.4g{step}")

[<Fact>]
let ``the same chip, targets and key give the same trim; the measurements carry trial noise`` () =
    let again = Calibration.calibrate chip targets key

    for k in Chip.parameters do
        Assert.Equal<int[]>(calibrated.Value.Codes[int k], again.Codes[int k])

    // Another trial key reads other codes: the noise is on, the determinism is the key's.
    let read (seed: int64) =
        CalibrationProbes.measure CircuitParameter.Leak chip calibrated.Value targets (Random.key seed)

    Assert.Equal<float[]>(read 1L, read 1L)
    Assert.NotEqual<float[]>(read 1L, read 2L)

[<Fact>]
let ``a saved trim loads back with its codes, chip and targets, and only onto its chip`` () =
    let path =
        Path.Combine(Path.GetTempPath(), $"snnfunc-trim-%s{Guid.NewGuid().ToString()}.txt")

    try
        Calibration.save path calibrated.Value
        let loaded = Calibration.load path

        for k in Chip.parameters do
            Assert.Equal<int[]>(calibrated.Value.Codes[int k], loaded.Codes[int k])

        Assert.Equal(calibrated.Value.Description, loaded.Description)
        Assert.Equal(Some 1L, loaded.ChipSeed)
        Assert.Equal(Some targets, loaded.Targets)
        // Its own chip takes it; another chip's emulator refuses it, naming both seeds.
        Bss2Emulator(chip, loaded, Bss2Config.defaults) |> ignore

        assertThrowsArg [ "chip seed 1"; "seed 2" ] (fun () -> Bss2Emulator(Chip.create 2L, loaded, Bss2Config.defaults))

        // The middle setting belongs to no chip and survives the trip too.
        Calibration.save path Chip.untrimmed
        let untrimmed = Calibration.load path
        Assert.Equal(None, untrimmed.ChipSeed)
        Assert.Equal(None, untrimmed.Targets)
        Assert.Equal<int[]>(Chip.untrimmed.Codes[2], untrimmed.Codes[2])

        // A damaged file names the line and what is wrong.
        let lines = File.ReadAllLines path
        File.WriteAllLines(path, Array.updateAt 6 (lines[6].Replace(" 512 ", " 2048 ")) lines)
        assertThrowsArg [ "line 7"; "'2048' is not a trim code" ] (fun () -> Calibration.load path)
        File.WriteAllLines(path, lines[..5])
        assertThrowsArg [ "line 7"; "missing"; "leak" ] (fun () -> Calibration.load path)
        File.WriteAllText(path, "not a trim")
        assertThrowsArg [ "line 1"; "not a trim file" ] (fun () -> Calibration.load path)
    finally
        File.Delete path

[<Fact>]
let ``targets outside calix's ranges fail with the parameter, the value and the range`` () =
    let fails (t: CalibrationTargets) (fragments: string list) =
        assertThrowsArg fragments (fun () -> Calibration.calibrate chip t key)

    fails { targets with Leak = 170.0 } [ "leak"; "170 CADC"; "50 CADC to 160 CADC" ]
    fails { targets with Threshold = 40.0 } [ "threshold"; "40 CADC"; "50 CADC to 220 CADC" ]
    fails { targets with Reset = 161.0 } [ "reset"; "161 CADC"; "50 CADC to 160 CADC" ]
    fails { targets with TauMem = 100e-6 } [ "tauMem"; "100 µs"; "0.5 µs to 60 µs" ]
    fails { targets with TauSyn = 0.1e-6 } [ "tauSyn"; "0.1 µs"; "0.3 µs to 30 µs" ]
    fails { targets with Leak = nan } [ "leak"; "NaN" ]

[<Fact>]
let ``a circuit whose deviation no trim code reaches fails with the circuit and the parameter named`` () =
    // Circuit 7's leak 5000 codes high: even code 0 leaves it above the CADC's range.
    let deviation = chip.Deviation |> Array.map Array.copy
    deviation[int CircuitParameter.Leak][7] <- 5000.0
    let broken = { chip with Deviation = deviation }

    assertThrowsArg [ "1 circuit(s)"; "outside 0..1023"; "leak"; "circuit 7 (at code 0" ] (fun () ->
        Calibration.calibrate broken targets key)
