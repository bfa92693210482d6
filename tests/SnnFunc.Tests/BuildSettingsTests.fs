/// Build settings that the code relies on.
module SnnFunc.Tests.BuildSettingsTests

open System
open System.IO
open Xunit

/// The repository root (the folder holding SnnFunc.sln), found upwards from the test binaries.
let private repoRoot () =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            failwith "SnnFunc.sln not found above the test binaries"
        elif File.Exists(Path.Combine(dir.FullName, "SnnFunc.sln")) then
            dir.FullName
        else
            up dir.Parent

    up (DirectoryInfo AppContext.BaseDirectory)

[<Fact>]
let ``loops start fully optimised through the build setting, not through dropped attributes`` () =
    // Directory.Build.props turns quick JIT for loops off for every project: that is what makes the
    // kernels' loop methods start optimised, since F# drops [<MethodImpl(AggressiveOptimization)>].
    Assert.Equal("false", string (AppContext.GetData "System.Runtime.TieredCompilation.QuickJitForLoops"))
    let root = repoRoot ()

    let offenders =
        [ "src"; "bench" ]
        |> List.collect (fun d ->
            Directory.GetFiles(Path.Combine(root, d), "*.fs", SearchOption.AllDirectories)
            |> List.ofArray)
        |> List.filter (fun f -> File.ReadAllText(f).Contains "[<MethodImpl(MethodImplOptions.AggressiveOptimization")
        |> List.map (fun f -> Path.GetRelativePath(root, f))

    Assert.True(offenders.IsEmpty, $"F# files with the (ignored) AggressiveOptimization attribute: %A{offenders}")

[<Fact>]
let ``tensors of a few MB live in gen 0 through the GC settings of Directory.Build.props`` () =
    // A [30; 250; 246] float32 tensor (7.4 MB): on the large-object heap by default, where each one
    // costs a full collection and a page fault per 4 KB page.
    Assert.Equal(box 67108864L, AppContext.GetData "System.GC.RegionSize" |> Convert.ToInt64 |> box)
    // A large-object-heap array is in generation 2 from its allocation; one on the small-object heap
    // is in generation 0 unless a collection (set off by tests running alongside) promoted it before
    // the check, so one of a few tries must see it in gen 0 (a single try failed 1 run in 10).
    let seenInGen0 =
        Seq.init 5 (fun _ -> GC.GetGeneration(GC.AllocateUninitializedArray<float32>(30 * 250 * 246)))
        |> Seq.exists ((=) 0)

    Assert.True(seenInGen0, "a 7.4 MB array was never in gen 0: the GC settings of Directory.Build.props are not applied")
    let big = GC.AllocateUninitializedArray<byte>(40_000_000)
    Assert.Equal(2, GC.GetGeneration big) // above the 32 MB threshold: the large-object heap
