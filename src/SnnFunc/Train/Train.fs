/// Training helpers: the epoch loop with live progress (or plain log lines when not in a terminal),
/// and checkpoints of parameters, optimizer state and epoch as .npz files, written atomically.
namespace SnnFunc

open System
open System.Collections.Generic
open System.IO
open Spectre.Console

/// A named scalar reported by training (loss, accuracy, spikes per sample ...).
type Metric = string * float

[<RequireQualifiedAccess>]
module Train =

    let private format (metrics: Metric list) =
        metrics |> List.map (fun (k, v) -> $"%s{k}=%.4f{v}") |> String.concat " "

    /// Means of metrics over the steps of an epoch, by name, in first-seen order.
    let average (perStep: Metric list seq) : Metric list =
        let all = perStep |> Seq.concat |> List.ofSeq
        let names = all |> List.map fst |> List.distinct

        names
        |> List.map (fun n -> n, all |> List.filter (fst >> (=) n) |> List.averageBy snd)

    /// True when a live progress display makes sense (an interactive terminal, not CI or a pipe).
    let interactive () =
        not Console.IsOutputRedirected
        && Environment.GetEnvironmentVariable "CI" <> "true"
        && AnsiConsole.Profile.Capabilities.Interactive

    /// Runs epochs startEpoch .. epochs-1: each calls `step epoch batch` for every batch (returning
    /// that batch's metrics), then `endEpoch epoch averages` (evaluate, checkpoint; returns extra
    /// metrics). Shows a progress bar in a terminal and one log line per epoch otherwise. Returns
    /// each epoch's summary — its number from 1, as in the log line "epoch N", and the averaged step
    /// metrics followed by endEpoch's — for training curves (SnnFunc.Plots' `Plot.trainingCurves`).
    let runWithHistory
        (startEpoch: int)
        (epochs: int)
        (batches: int)
        (step: int -> int -> Metric list)
        (endEpoch: int -> Metric list -> Metric list)
        : (int * Metric list) list =
        if batches <= 0 then
            invalidArg "batches" $"Train.run: batches must be positive, got %d{batches}"

        let history = ResizeArray<int * Metric list>()

        let runEpoch (epoch: int) (progress: int -> Metric list -> unit) =
            let results = ResizeArray()

            for b in 0 .. batches - 1 do
                let m = step epoch b
                results.Add m
                progress (b + 1) m

            let averages = average results
            let summary = averages @ endEpoch epoch averages
            history.Add((epoch + 1, summary))
            summary

        if interactive () then
            for epoch in startEpoch .. epochs - 1 do
                let mutable summary = []

                AnsiConsole
                    .Progress()
                    .Columns(TaskDescriptionColumn(), ProgressBarColumn(), PercentageColumn(), RemainingTimeColumn())
                    .Start(fun ctx ->
                        let task = ctx.AddTask($"epoch %d{epoch + 1}/%d{epochs}", true, float batches)

                        summary <-
                            runEpoch epoch (fun _ m ->
                                task.Increment 1.0
                                task.Description <- $"epoch %d{epoch + 1}/%d{epochs} %s{format m}"))

                printfn "epoch %d %s" (epoch + 1) (format summary)
        else
            for epoch in startEpoch .. epochs - 1 do
                let summary = runEpoch epoch (fun _ _ -> ())
                printfn "epoch %d %s" (epoch + 1) (format summary)
                Console.Out.Flush()

        List.ofSeq history

    /// Runs epochs startEpoch .. epochs-1: each calls `step epoch batch` for every batch (returning
    /// that batch's metrics), then `endEpoch epoch averages` (evaluate, checkpoint; returns extra
    /// metrics). Shows a progress bar in a terminal and one log line per epoch otherwise
    /// (`runWithHistory` also returns the epochs' metrics).
    let run
        (startEpoch: int)
        (epochs: int)
        (batches: int)
        (step: int -> int -> Metric list)
        (endEpoch: int -> Metric list -> Metric list)
        : unit =
        runWithHistory startEpoch epochs batches step endEpoch |> ignore

    // Checkpoints -----------------------------------------------------------------------------------
    //
    // A checkpoint is an .npz file whose arrays are named by key path (KeyPath.toName):
    // "params/<path>" for each parameter leaf ("params" alone for a parameter tree that is one
    // tensor), "opt/<path>" for each optimizer-state leaf ("opt/0/Mu/hidden/TauMem": part 0 of a
    // chain, Adam's first moment of the parameter hidden/TauMem) and "epochs_done". In NumPy,
    // `np.load(path).files` lists these names.
    //
    // Files written before key paths named their arrays by position ("param_0000", "opt_0000" in
    // flattening order). They still load, positionally, into the structures they were saved from:
    // the optimizer states keep their tensors in the same order as then. Saving again writes names.

    /// The name of a leaf's array under prefix ("params", "opt").
    let private entryName (prefix: string) (path: KeyPath) =
        match KeyPath.toName path with
        | "" -> prefix
        | name -> prefix + "/" + name

    /// Saves parameters, optimizer state and the number of completed epochs as one .npz file whose
    /// arrays are named by key path (see above). The file is replaced atomically: an interrupted
    /// save leaves the previous checkpoint intact.
    let saveCheckpoint (path: string) (parameters: 'P) (optState: OptState) (epochsDone: int) : unit =
        let ps, _ = Tree.flattenWithPath parameters
        let os, _ = Tree.flattenWithPath optState

        let entries =
            [
                yield "epochs_done", Tensor.Scalar(float epochsDone, Float64)
                for p, x in ps -> entryName "params" p, x
                for p, x in os -> entryName "opt" p, x
            ]

        match Path.GetDirectoryName(Path.GetFullPath path) with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore

        Npz.save path entries

    let private invalidDataException (path: string) (message: string) : 'a =
        raise (InvalidDataException $"%s{message} (file %s{path})")

    /// The array `name` for a leaf like `like`: the same shape, converted to like's dtype.
    let private restore (path: string) (name: string) (like: Tensor) (t: Tensor) (hint: unit -> string) =
        if t.ShapeRef <> like.ShapeRef then
            invalidDataException
                path
                $"checkpoint array '%s{name}' has shape %s{Shape.format t.ShapeRef}, expected %s{Shape.format like.ShapeRef}%s{hint ()}"

        t.Convert like.DType

    /// Loads a checkpoint into the structures of `parametersLike` and `optStateLike`; returns the
    /// parameters, optimizer state and number of completed epochs. Arrays are found by key path:
    /// a leaf without its array, an array of another shape, or an array that no leaf takes (a
    /// renamed or removed field, another optimizer) is an InvalidDataException naming it. Files of
    /// the earlier positional format load positionally (see above).
    let loadCheckpoint (path: string) (parametersLike: 'P) (optStateLike: OptState) : 'P * OptState * int =
        let arrays = Npz.load path
        let ps, pdef = Tree.flattenWithPath parametersLike
        let os, odef = Tree.flattenWithPath optStateLike

        let positional =
            arrays.Keys
            |> Seq.exists (fun k ->
                k.StartsWith("param_", StringComparison.Ordinal)
                || k.StartsWith("opt_", StringComparison.Ordinal))

        let byPosition (prefix: string) (what: string) (like: (KeyPath * Tensor)[]) =
            let advice =
                "this file has the positional names of earlier versions, which load only into the structure they were saved from (load it there and save again to get names by key path)"

            let inFile =
                arrays.Keys
                |> Seq.filter (fun k -> k.StartsWith(prefix + "_", StringComparison.Ordinal))
                |> Seq.length

            if inFile > like.Length then
                invalidDataException
                    path
                    $"checkpoint has %d{inFile} arrays '%s{prefix}_*' but the %s{what} have %d{like.Length} leaves; %s{advice}"

            like
            |> Array.mapi (fun i (p, l) ->
                let name = $"%s{prefix}_%04d{i}"

                let hint () =
                    $" for the leaf '%s{KeyPath.toName p}' of the %s{what}; %s{advice}"

                match arrays.TryFind name with
                | None -> invalidDataException path $"checkpoint has no array '%s{name}'%s{hint ()}"
                | Some t -> restore path name l t hint)

        let byName (prefix: string) (what: string) (like: (KeyPath * Tensor)[]) =
            let names = like |> Array.map (fun (p, _) -> entryName prefix p)
            let taken = HashSet names

            let unmatched =
                arrays.Keys
                |> Seq.filter (fun k ->
                    (k = prefix || k.StartsWith(prefix + "/", StringComparison.Ordinal))
                    && not (taken.Contains k))
                |> List.ofSeq

            let others () =
                match unmatched with
                | [] -> ""
                | ks ->
                    "; arrays of the file that no leaf takes: "
                    + String.Join(", ", ks |> List.truncate 8)

            let values =
                Array.map2
                    (fun name (_, l) ->
                        match arrays.TryFind name with
                        | None -> invalidDataException path $"checkpoint has no array '%s{name}' (a leaf of the %s{what})%s{others ()}"
                        | Some t -> restore path name l t (fun () -> $" (a leaf of the %s{what})"))
                    names
                    like

            match unmatched with
            | [] -> values
            | k :: _ ->
                invalidDataException
                    path
                    $"checkpoint array '%s{k}' matches no leaf of the %s{what} it is loaded into (a renamed or removed field, another optimizer?)%s{others ()}"

        let load = if positional then byPosition else byName

        let epochs =
            arrays.TryFind "epochs_done"
            |> Option.map (fun t -> int (t.ToScalar()))
            |> Option.defaultValue 0

        let parameters =
            Tree.unflatten pdef (load (if positional then "param" else "params") "parameters" ps)

        parameters, Tree.unflatten odef (load "opt" "optimizer state" os), epochs
