# NHS-CM-RUNNER v1
# The host code of nhs_cm.remediation (docs/security.md). The controller validates the request,
# fills in every default and sends the files a request needs (RUNNER_FILES, RUNNER_SECTIONS in
# _protocol.py) with the request JSON on standard input; the bootstrap runs them. A region
# ('# region: <name>') runs to the next region or the end of its file; each operation is the region
# 'op:<name>'. Windows PowerShell 5.1, ASCII, no aliases, nothing compiled on the host.
# common.ps1: errors, reg.exe and the operation table. Writes nothing itself.
param([string]$RequestJson)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# op name -> script block: takes the op (every field present), returns one hashtable of exactly the
# reply fields of OPERATIONS (tests/unit/plugins/plugin_utils/_runner/test_runner_ps1.py checks both).
$Operations = @{}
# Script blocks run at the end of the request, even after a failure: $null, or what failed.
$Cleanup = New-Object -TypeName System.Collections.Generic.List[scriptblock]
$UserSidPattern = '^S-1-(5-21|12-1)-\d+-\d+-\d+-\d+$'
$RegExe = Join-Path -Path $env:SystemRoot -ChildPath 'System32\reg.exe'
function New-OpException {
    # An error of a kind of ERROR_KINDS (_protocol.py) for the operation's result.
    param([string]$Kind, [string]$Message)
    $exception = New-Object -TypeName System.InvalidOperationException -ArgumentList $Message
    $exception.Data['nhs_cm_kind'] = $Kind
    return $exception
}
function Assert-Allowed {
    # The allow-list's answer: 'forbidden', saying why, unless $Condition holds.
    param([bool]$Condition, [string]$Message)
    if (-not $Condition) { throw (New-OpException -Kind 'forbidden' -Message $Message) }
}
function Get-ErrorKind {
    param($Exception)
    for ($item = $Exception; $null -ne $item; $item = $item.InnerException) {
        if ($item.Data.Contains('nhs_cm_kind')) { return [string]$item.Data['nhs_cm_kind'] }
        if ($item -is [System.UnauthorizedAccessException] -or $item -is [System.Security.SecurityException] -or $item.HResult -eq -2147024891) { return 'access_denied' }
        if ($item -is [System.TimeoutException]) { return 'timeout' }
        if ($item -is [System.Management.Automation.ItemNotFoundException] -or $item -is [System.IO.FileNotFoundException]) { return 'not_found' }
        if ($item.GetType().FullName -eq 'Microsoft.Management.Infrastructure.CimException') {
            if ([string]$item.NativeErrorCode -eq 'AccessDenied') { return 'access_denied' }
            if (@('NotFound', 'InvalidClass', 'InvalidNamespace') -contains [string]$item.NativeErrorCode) { return 'not_found' }
        }
    }
    return 'failed'
}
function Get-ErrorMessage {
    # The innermost exception's message: the one that says what went wrong.
    param($Exception)
    while ($null -ne $Exception.InnerException) { $Exception = $Exception.InnerException }
    return [string]$Exception.Message
}
function Invoke-RegExe {
    # reg.exe load or unload: $null, or why it failed ('Continue': native stderr must not throw).
    param([string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $output = @(& $RegExe @Arguments 2>&1)
    if ($LASTEXITCODE -eq 0) { return $null }
    return ('reg.exe {0} exited with {1}: {2}' -f $Arguments[0], $LASTEXITCODE, (($output | ForEach-Object -Process { ([string]$_).Trim() }) -join ' '))
}
function Dismount-Hive {
    # Unload HKU\<Mount> (an nhs_cm_<12 hex> mount of this code): $null, or why not. Open handles
    # keep a hive loaded, so the finalizers run first, with a few retries.
    param([string]$Mount)
    for ($attempt = 1; $attempt -le 5; $attempt++) {
        [System.GC]::Collect(); [System.GC]::WaitForPendingFinalizers()
        $problem = Invoke-RegExe -Arguments @('unload', "HKU\$Mount")
        if ($null -eq $problem) { return $null }
        Start-Sleep -Milliseconds (200 * $attempt)
    }
    return $problem
}
