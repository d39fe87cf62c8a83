# services.ps1: Windows services. Reads any service. Writes only the start mode and state of the NHS Port
# Service and the Smart Card service (SCardSvr), the services of the allow-list.
# region: service_state
$ServiceStates = @('running', 'stopped', 'start_pending', 'stop_pending', 'continue_pending', 'pause_pending', 'paused')
function ConvertTo-ServiceState {
    param([string]$State)
    $normal = $State.ToLowerInvariant().Replace(' ', '_')
    if ($ServiceStates -contains $normal) { return $normal }
    return 'unknown'
}
# region: op:service_query
$Operations['service_query'] = {
    param($Req)
    $services = New-Object -TypeName System.Collections.Generic.List[object]
    $everything = ($null -eq $Req.names) -and ($null -eq $Req.display_names)
    foreach ($service in @(Get-CimInstance -ClassName Win32_Service -OperationTimeoutSec 60)) {
        if ($everything -or ($Req.names -contains [string]$service.Name) -or ($Req.display_names -contains [string]$service.DisplayName)) {
            $image = if ([string]::IsNullOrEmpty($service.PathName)) { $null } else { [string]$service.PathName }
            $services.Add(@{ name = [string]$service.Name; display_name = [string]$service.DisplayName; state = (ConvertTo-ServiceState -State ([string]$service.State)); start_mode = ([string]$service.StartMode).ToLowerInvariant(); image = $image; pid = [int]$service.ProcessId })
        }
    }
    return @{ ok = $true; services = $services.ToArray() }
}
# region: service_write
function Get-ServiceRecord {
    # The Win32_Service of one service name (letters, digits, ' _.$-' only), else not_found.
    param([string]$Name)
    Assert-Allowed -Condition ($Name -match '^[A-Za-z0-9 _.$-]{1,256}$') -Message "'$Name' is not a service name"
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name = '$Name'" -OperationTimeoutSec 60
    if ($null -eq $service) { throw (New-OpException -Kind 'not_found' -Message "no service is named '$Name'") }
    return $service
}
function Wait-ServiceStatus {
    # Polls until the service is $Wanted: 'failed' when it settles in $Other, 'timeout' at the deadline.
    param($Controller, $Wanted, $Other, [DateTime]$Deadline)
    do {
        Start-Sleep -Milliseconds 250; $Controller.Refresh()
        $status = $Controller.Status
    } while ($status -ne $Wanted -and $status -ne $Other -and [DateTime]::UtcNow -lt $Deadline)
    if ($status -eq $Wanted) { return }
    throw (New-OpException -Kind $(if ($status -eq $Other) { 'failed' } else { 'timeout' }) -Message ('service {0} is {1}, not {2}' -f $Controller.ServiceName, $status, $Wanted))
}
function Wait-PortListener {
    # Polls every 250 ms until something listens on one of $Ports or $WaitMs has passed.
    param([int[]]$Ports, [int]$WaitMs)
    $deadline = [DateTime]::UtcNow.AddMilliseconds($WaitMs)
    while ([DateTime]::UtcNow -lt $deadline) {
        foreach ($listener in (Get-AllListeners)) { if ($Ports -contains [int]$listener['port']) { return } }
        Start-Sleep -Milliseconds 250
    }
}
# region: op:service_set
$Operations['service_set'] = {
    param($Req)
    $service = Get-ServiceRecord -Name $Req.name
    Assert-Allowed -Condition (([string]$service.Name -eq 'SCardSvr') -or ([string]$service.DisplayName -eq 'NHS Port Service')) -Message "service '$($service.Name)' ($($service.DisplayName)) is not one this collection manages (the runner's write allow-list)"
    $previousState = ConvertTo-ServiceState -State ([string]$service.State)
    $previousStartMode = ([string]$service.StartMode).ToLowerInvariant()
    $modes = @{ auto = 'Automatic'; manual = 'Manual'; disabled = 'Disabled' }
    if ($null -ne $Req.start_mode -and $Req.start_mode -ne $previousStartMode) { Set-Service -Name ([string]$service.Name) -StartupType $modes[$Req.start_mode] }
    # Get-Service gives the ServiceController (and loads System.ServiceProcess for the types below).
    $controller = Get-Service -Name ([string]$service.Name)
    $running, $stopped = [System.ServiceProcess.ServiceControllerStatus[]]@('Running', 'Stopped')
    $deadline = [DateTime]::UtcNow.AddMilliseconds($Req.timeout_ms)
    try {
        if ($Req.state -ne 'started' -and $controller.Status -ne $stopped) {
            $controller.Stop()
            Wait-ServiceStatus -Controller $controller -Wanted $stopped -Other $running -Deadline $deadline
        }
        $controller.Refresh()
        if ($Req.state -ne 'stopped' -and $controller.Status -ne $running) {
            $controller.Start()
            Wait-ServiceStatus -Controller $controller -Wanted $running -Other $stopped -Deadline $deadline
        }
    } finally { $controller.Close() }
    if ($Req.state -ne 'stopped' -and $null -ne $Req.listen_ports -and $Req.listen_ports.Count -gt 0 -and $Req.listen_wait_ms -gt 0) {
        Wait-PortListener -Ports $Req.listen_ports -WaitMs $Req.listen_wait_ms
    }
    $after = Get-ServiceRecord -Name ([string]$service.Name)
    return @{ ok = $true; name = [string]$after.Name; display_name = [string]$after.DisplayName; state = (ConvertTo-ServiceState -State ([string]$after.State)); start_mode = ([string]$after.StartMode).ToLowerInvariant(); previous_state = $previousState; previous_start_mode = $previousStartMode }
}
