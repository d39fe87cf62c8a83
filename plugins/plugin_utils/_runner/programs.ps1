# programs.ps1: starts a program in a user's session through a one-off scheduled task nhs_cm_* (the user's
# SID, interactive, limited, deleted even on failure), only from where only administrators can write
# (Get-UserWritableReason); stops a process (pid and image) of an interactive session. Writes only those.
# region: programs
$UserGroups = @{ 'S-1-1-0' = 'Everyone'; 'S-1-5-11' = 'Authenticated Users'; 'S-1-5-32-545' = 'Users'; 'S-1-5-4' = 'INTERACTIVE' }
# WriteData, AppendData, DeleteSubdirectoriesAndFiles, Delete, ChangePermissions, TakeOwnership, GENERIC_WRITE, GENERIC_ALL.
$ChangeRights = 0x500D0046
function Test-ProgramShape {
    # $null when the path is an .exe on a local drive outside the Windows folder, else why not.
    param([string]$Path)
    $segments = $Path.Split('\')
    if ($Path.Length -gt 260 -or $Path -notmatch '^[A-Za-z]:\\[^<>"|?*\x00-\x1F]+\.exe$' -or ($segments | Where-Object -FilterScript { $_ -eq '' -or $_ -eq '.' -or $_ -eq '..' })) {
        return 'is not the absolute path of a .exe on a local drive'
    }
    if ($Path.StartsWith($env:SystemRoot.TrimEnd('\') + '\', [System.StringComparison]::OrdinalIgnoreCase)) { return 'lies under the Windows folder' }
    return $null
}
function Get-UserWritableReason {
    # $null when only administrators can change the program and the folders it lies in, else why.
    param([string]$Path)
    $profiles = (Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList').ProfilesDirectory
    foreach ($folder in @($profiles, $env:PUBLIC, $env:ProgramData, $env:TEMP, [System.IO.Path]::GetTempPath())) {
        if (-not [string]::IsNullOrEmpty($folder) -and $Path.StartsWith($folder.TrimEnd('\') + '\', [System.StringComparison]::OrdinalIgnoreCase)) {
            return "lies under $folder, which standard users can write"
        }
    }
    for ($item = $Path; $item.Length -gt 3; $item = [System.IO.Path]::GetDirectoryName($item)) {
        if (([System.IO.File]::GetAttributes($item) -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) { return "goes through a link (reparse point): $item" }
        foreach ($rule in (Get-Acl -LiteralPath $item).GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
            $applies = $rule.AccessControlType -eq 'Allow' -and -not ($rule.PropagationFlags -band [System.Security.AccessControl.PropagationFlags]::InheritOnly)
            if ($applies -and $UserGroups.ContainsKey($rule.IdentityReference.Value) -and ([int]$rule.FileSystemRights -band $ChangeRights)) {
                return "can be changed by $($UserGroups[$rule.IdentityReference.Value]) ($item)"
            }
        }
    }
    return $null
}
# region: task
function Get-SessionProcessIds {
    # Ids of the processes of one session whose image is $Image.
    param([string]$Image, [int]$Session)
    $ids = New-Object -TypeName System.Collections.Generic.List[int]
    foreach ($item in @(Get-CimInstance -ClassName Win32_Process -Filter "SessionId = $Session" -Property @('ProcessId', 'ExecutablePath') -OperationTimeoutSec 60)) {
        if ([string]::Equals([string]$item.ExecutablePath, $Image, [System.StringComparison]::OrdinalIgnoreCase)) { $ids.Add([int]$item.ProcessId) }
    }
    return ,$ids.ToArray()
}
# region: op:task_run
$Operations['task_run'] = {
    param($Req)
    Assert-Allowed -Condition ($Req.name -cmatch '^nhs_cm_[A-Za-z0-9_-]{1,64}$') -Message "task name '$($Req.name)' must be nhs_cm_ followed by 1 to 64 letters, digits, '_' or '-'"
    Assert-Allowed -Condition ($Req.arguments.Length -le 512 -and $Req.arguments -cnotmatch '[\x00-\x1F]') -Message 'the arguments must be at most 512 characters without control characters'
    $problem = Test-ProgramShape -Path $Req.command
    Assert-Allowed -Condition ($null -eq $problem) -Message "command '$($Req.command)' $problem"
    if (-not [System.IO.File]::Exists($Req.command)) { throw (New-OpException -Kind 'not_found' -Message "no program at $($Req.command)") }
    $problem = Get-UserWritableReason -Path $Req.command
    Assert-Allowed -Condition ($null -eq $problem) -Message "command '$($Req.command)' $problem; it is not started"
    $before = Get-SessionProcessIds -Image $Req.command -Session $Req.session
    $action = New-ScheduledTaskAction -Execute $Req.command
    if ($Req.arguments -ne '') { $action = New-ScheduledTaskAction -Execute $Req.command -Argument $Req.arguments }
    $principal = New-ScheduledTaskPrincipal -UserId $Req.user -LogonType Interactive -RunLevel Limited
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -ExecutionTimeLimit ([TimeSpan]::Zero) -MultipleInstances IgnoreNew
    $registered, $processId, $lastResult = $false, $null, $null
    try {
        $null = Register-ScheduledTask -TaskName $Req.name -TaskPath '\' -Action $action -Principal $principal -Settings $settings
        $registered = $true
        Start-ScheduledTask -TaskName $Req.name -TaskPath '\'
        # Wait for a process of the program in the session that was not there before.
        $deadline = [DateTime]::UtcNow.AddMilliseconds($Req.wait_ms)
        do {
            $processId = @(Get-SessionProcessIds -Image $Req.command -Session $Req.session | Where-Object -FilterScript { $before -notcontains $_ }) | Select-Object -First 1
            if ($null -eq $processId) { Start-Sleep -Milliseconds 250 }
        } while ($null -eq $processId -and [DateTime]::UtcNow -lt $deadline)
        $lastResult = [long](Get-ScheduledTaskInfo -TaskName $Req.name -TaskPath '\').LastTaskResult
    } finally {
        if ($registered) {
            # 'deleted' tells whether it is gone.
            try { Unregister-ScheduledTask -TaskName $Req.name -TaskPath '\' -Confirm:$false } catch { $null = $_ }
        }
    }
    $left = Get-ScheduledTask -TaskName $Req.name -TaskPath '\' -ErrorAction SilentlyContinue
    return @{ ok = $true; started = ($null -ne $processId); pid = $processId; last_result = $lastResult; deleted = ($null -eq $left) }
}
# region: op:process_stop
$Operations['process_stop'] = {
    param($Req)
    $problem = Test-ProgramShape -Path $Req.image
    Assert-Allowed -Condition ($null -eq $problem) -Message "image '$($Req.image)' $problem"
    $process = Get-CimInstance -ClassName Win32_Process -Filter "ProcessId = $($Req.pid)" -OperationTimeoutSec 60
    if ($null -eq $process -or -not [string]::Equals([string]$process.ExecutablePath, $Req.image, [System.StringComparison]::OrdinalIgnoreCase)) {
        return @{ ok = $true; found = $false; stopped = $false }
    }
    Assert-Allowed -Condition ([int]$process.SessionId -ge 1) -Message "process $($Req.pid) runs in session 0; only processes of interactive sessions may be stopped"
    Stop-Process -Id $Req.pid -Force
    Wait-Process -Id $Req.pid -Timeout 10 -ErrorAction SilentlyContinue
    return @{ ok = $true; found = $true; stopped = ($null -eq (Get-Process -Id $Req.pid -ErrorAction SilentlyContinue)) }
}
