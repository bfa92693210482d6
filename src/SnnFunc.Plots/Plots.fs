/// The C# face of the plots: a static class in the facade's namespace, the same figures as the F#
/// `Plot` module with C# arguments (optional parameters, .NET collections, Trainer.Run's history).
namespace SnnFunc.CSharp

open System
open System.Collections.Generic
open System.Runtime.InteropServices
open SnnFunc
open SnnFunc.Backends

/// <summary>Figures of spikes, membranes, training and the emulated chip (package SnnFunc.Plots, over
/// ScottPlot): <c>Plots.Raster(run["hidden"].Spikes, dt).WithTitle("hidden").Save("raster.svg")</c>.
/// Time axes are in ms (inputs in seconds), neurons by index, colours Okabe–Ito's (colour-blind safe).
/// <c>Figure.Save</c> writes PNG or SVG by the extension.</summary>
[<AbstractClass; Sealed>]
type Plots =
    /// <summary>The spike raster of one sample of dense spikes [T, B, N] (or [T, N]): a mark per non-zero value.</summary>
    /// <param name="spikes">The spikes, time-major.</param>
    /// <param name="dt">The step in seconds.</param>
    /// <param name="sample">The sample of the batch.</param>
    /// <exception cref="ArgumentException">A wrong rank, an empty tensor, NaN, or a sample outside the batch.</exception>
    static member Raster(spikes: Tensor, dt: float, [<Optional; DefaultParameterValue(0)>] sample: int) : Figure =
        Plot.rasterOf sample dt spikes

    /// <summary>The spike raster of one sample of an event buffer.</summary>
    /// <param name="events">The events (times in seconds).</param>
    /// <param name="sample">The sample (batch axes flattened).</param>
    /// <param name="tEnd">The end of the time axis in seconds (null: the last event).</param>
    static member Raster
        (
            events: EventBuffer,
            [<Optional; DefaultParameterValue(0)>] sample: int,
            [<Optional; DefaultParameterValue(Nullable<float>())>] tEnd: Nullable<float>
        ) : Figure =
        Plot.eventRasterOf sample (Option.ofNullable tEnd) events

    /// <summary>Membrane traces of one sample with the threshold as a dashed line.</summary>
    /// <param name="membrane">The membrane, [T, B, N] or [T, N].</param>
    /// <param name="dt">The step in seconds.</param>
    /// <param name="threshold">The threshold to mark (null: none).</param>
    /// <param name="neurons">The neurons to show (null: the first four).</param>
    /// <param name="sample">The sample of the batch.</param>
    static member Traces
        (
            membrane: Tensor,
            dt: float,
            [<Optional; DefaultParameterValue(Nullable<float>())>] threshold: Nullable<float>,
            [<Optional; DefaultParameterValue(null: IEnumerable<int>)>] neurons: IEnumerable<int>,
            [<Optional; DefaultParameterValue(0)>] sample: int
        ) : Figure =
        let threshold = Option.ofNullable threshold

        if isNull neurons then
            if sample = 0 then
                Plot.traces dt threshold membrane
            else
                let n =
                    if isNull membrane || membrane.Rank < 2 then 1
                    elif membrane.Rank = 2 then membrane.Shape[1]
                    else Array.fold (*) 1 membrane.Shape[2..]

                Plot.tracesOf sample [ 0 .. max 1 (min n 4) - 1 ] dt threshold membrane
        else
            Plot.tracesOf sample (List.ofSeq neurons) dt threshold membrane

    /// <summary>Training curves from <see cref="Trainer.Run"/>'s history: losses on the left axis,
    /// accuracies on the right, by epoch (numbered from 1, as the log lines).</summary>
    /// <param name="history">The epochs' metrics.</param>
    static member TrainingCurves(history: IEnumerable<EpochMetrics>) : Figure =
        if isNull history then
            nullArg "history"

        history
        |> Seq.map (fun e -> e.Epoch + 1, e.Metrics |> Seq.map (fun kv -> kv.Key, kv.Value) |> List.ofSeq)
        |> List.ofSeq
        |> Plot.trainingCurves

    /// <summary>A histogram of values in equal bins between their minimum and maximum.</summary>
    /// <param name="values">Finite values.</param>
    /// <param name="bins">The number of bins.</param>
    /// <param name="label">The x axis label, with its unit.</param>
    static member Histogram
        (
            values: IEnumerable<float>,
            [<Optional; DefaultParameterValue(30)>] bins: int,
            [<Optional; DefaultParameterValue("value")>] label: string
        ) : Figure =
        if isNull values then
            nullArg "values"

        Plot.histogram bins label (Array.ofSeq values)

    /// <summary>A histogram of a tensor's values (e.g. a weight matrix).</summary>
    /// <param name="values">The tensor.</param>
    /// <param name="bins">The number of bins.</param>
    /// <param name="label">The x axis label, with its unit.</param>
    static member Histogram
        (values: Tensor, [<Optional; DefaultParameterValue(30)>] bins: int, [<Optional; DefaultParameterValue("weight")>] label: string)
        : Figure =
        if isNull values then
            nullArg "values"

        Plot.histogram bins label (values.ToDoubleArray())

    /// <summary>A histogram of the spike times (ms) of all events of an event buffer.</summary>
    /// <param name="events">The events.</param>
    /// <param name="bins">The number of bins.</param>
    static member SpikeTimes(events: EventBuffer, [<Optional; DefaultParameterValue(30)>] bins: int) : Figure = Plot.spikeTimes bins events

    /// <summary>The fixed-pattern spreads of the emulated chip of a seed before and after its default
    /// calibration (which this runs, a few seconds).</summary>
    /// <param name="chipSeed">The chip instance (as in <see cref="EmulatedChip.Create"/>).</param>
    static member FixedPatternSpread(chipSeed: int64) : Figure =
        let chip = Chip.create chipSeed

        let trim =
            Calibration.calibrate chip CalibrationTargets.defaults (Random.key chipSeed)

        Plot.fixedPatternSpread chip Chip.untrimmed trim
