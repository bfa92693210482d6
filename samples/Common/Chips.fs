/// The samples' emulated chip: the emulator for `--backend bss2` from `--chip-seed`,
/// `--calibration` and `--uncalibrated`, and the hardware-time account they print. Linked into
/// the samples that run on the BrainScaleS-2 emulator.
module Chips

open SnnFunc
open SnnFunc.Backends

/// Where a sample computes its forward pass.
type BackendKind =
    /// The software model (Graph.run / Events.run).
    | Software
    /// The BrainScaleS-2 emulator: forward on the emulated chip, gradients from the software model.
    | Bss2

/// The command-line settings of the emulated chip (`--backend`, `--chip-seed`, `--calibration`,
/// `--uncalibrated`, `--weight-scale`), the same in every sample.
type ChipSettings =
    {
        Backend: BackendKind
        ChipSeed: int64
        Calibration: string option
        Uncalibrated: bool
        /// None: the sample's own choice.
        WeightScale: float option
    }

/// The usage lines of the chip options.
module Usage =
    let backend =
        "where the forward pass runs: software (default) or bss2 (the BrainScaleS-2 emulator; gradients from the software model)"

    let chipSeed = "the emulated chip instance (default 0)"

    let calibration =
        "load the chip's calibration from this file, or calibrate and save it there"

    let uncalibrated =
        "run the emulated chip uncalibrated (every circuit at the shared trim setting)"

    let weightScale =
        "hardware weight per model weight unit on the chip (default: the sample's)"

/// The problems of chip settings, as OptionChecks' lines.
let problems (s: ChipSettings) =
    [
        OptionChecks.path "calibration" s.Calibration
        s.WeightScale |> Option.bind (OptionChecks.positive "weight-scale")
        (if s.Uncalibrated && s.Calibration.IsSome then
             Some "--uncalibrated and --calibration contradict each other"
         else
             None)
        (if s.Backend = Software && (s.Uncalibrated || s.Calibration.IsSome) then
             Some "--uncalibrated and --calibration need --backend bss2"
         else
             None)
    ]

/// The emulator of a chip seed (calibrated unless --uncalibrated), its
/// configuration the defaults changed by `configure`.
let emulator (settings: ChipSettings) (configure: Bss2Config -> Bss2Config) : Bss2Emulator =
    let c = Chip.create settings.ChipSeed

    // Calibrated by default (calix-like, ~3 s); --calibration loads a saved trim or saves one.
    let trim =
        if settings.Uncalibrated then
            Chip.untrimmed
        else
            match settings.Calibration with
            | Some path when System.IO.File.Exists path -> Calibration.load path
            | path ->
                let t =
                    Calibration.calibrate c CalibrationTargets.defaults (Random.key settings.ChipSeed)

                path |> Option.iter (fun p -> Calibration.save p t)
                t

    Bss2Emulator(c, trim, configure Bss2Config.defaults)

/// The same chip with fresh trial-to-trial noise for run number `trial`.
let trial (e: Bss2Emulator) (seed: int64) (trial: int) =
    e.With
        { e.Config with
            TrialKey = Random.foldIn (Random.key seed) trial
        }

/// Sums accounts of several runs.
let total (accounts: Account seq) : Account =
    let accounts = Array.ofSeq accounts
    let samples = accounts |> Array.sumBy (fun a -> a.Samples)
    let seconds = accounts |> Array.sumBy (fun a -> a.BackendSeconds)

    {
        Samples = samples
        BackendSeconds = seconds
        SamplesPerSecond = float samples / seconds
        JoulesPerSample =
            (accounts |> Array.sumBy (fun a -> a.JoulesPerSample * float a.Samples))
            / float samples
    }

/// Prints the account of a test-set pass in the samples' format.
let printAccount (what: string) (a: Account) =
    printfn
        "%s on the emulated chip: %.1f µs of hardware time per sample, %.0f samples/s of hardware time, %.2f µJ per sample (%d samples, %.3f ms in all)"
        what
        (a.BackendSeconds / float a.Samples * 1e6)
        a.SamplesPerSecond
        (a.JoulesPerSample * 1e6)
        a.Samples
        (a.BackendSeconds * 1e3)
