/// The samples' `--plots DIR`: the figures each training sample writes there (training curves and
/// one raster or trace figure, as PNG), each announced by a "wrote <path>" line. Linked into every F#
/// training sample (a file, not a library: a sample stays one project a reader can copy).
module internal SamplePlots

open System.IO
open SnnFunc

/// The option's usage line.
let usage =
    "write training.png (loss and accuracy per epoch) and spike raster / membrane figures of a test sample (PNG) into this folder"

/// Writes a figure as dir/name and says so.
let write (dir: string) (name: string) (fig: Figure) =
    let path = Path.Combine(dir, name)
    Plot.save path fig
    printfn "wrote %s" path

/// Writes dir/<name> (training.png by default): the curves of Train.runWithHistory's metrics.
let curvesAs (name: string) (program: string) (dir: string) (history: (int * Metric list) list) =
    if history.IsEmpty then
        printfn "no training epochs run here, so no %s" (Path.Combine(dir, name))
    else
        write dir name (Plot.trainingCurves history |> Plot.withTitle $"%s{program}: training")

/// Writes dir/training.png: the curves of Train.runWithHistory's metrics.
let curves (program: string) (dir: string) (history: (int * Metric list) list) =
    curvesAs "training.png" program dir history
