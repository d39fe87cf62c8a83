# network.ps1: listening TCP sockets, and one GET of a loopback URL (the NHS Port Service's page)
# that sends no credentials, follows no redirect and uses no proxy. Writes nothing.
# region: listeners
function Get-AllListeners {
    # @{ address; port; pid } of every listening socket (Windows 8 or newer: Get-NetTCPConnection).
    $found = New-Object -TypeName System.Collections.Generic.List[object]
    try {
        foreach ($connection in @(Get-NetTCPConnection -State Listen -ErrorAction Stop)) {
            $found.Add(@{ address = [string]$connection.LocalAddress; port = [int]$connection.LocalPort; pid = [int]$connection.OwningProcess })
        }
    } catch { if ([string]$_.CategoryInfo.Category -ne 'ObjectNotFound') { throw } }
    return ,$found.ToArray()
}
# region: op:tcp_listeners
$Operations['tcp_listeners'] = {
    param($Req)
    $listeners = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($listener in (Get-AllListeners)) { if (($null -eq $Req.ports) -or ($Req.ports -contains $listener['port'])) { $listeners.Add($listener) } }
    return @{ ok = $true; listeners = $listeners.ToArray() }
}
# region: http
function Get-NoAnswerReason {
    # Why nothing answered: 'connection refused', 'timeout', or the web error's status and detail.
    param($Exception)
    $webError = $null
    for ($item = $Exception; $null -ne $item; $item = $item.InnerException) {
        if ($item -is [System.Net.WebException] -and $null -eq $webError) { $webError = $item }
        if ($item -is [System.Net.Sockets.SocketException]) {
            if ([string]$item.SocketErrorCode -eq 'ConnectionRefused') { return 'connection refused' }
            return '{0} ({1})' -f $webError.Status, $item.SocketErrorCode
        }
    }
    if ($null -eq $webError) { return 'failed: ' + (Get-ErrorMessage -Exception $Exception) }
    if ([string]$webError.Status -eq 'Timeout') { return 'timeout' }
    return '{0} ({1})' -f $webError.Status, $webError.Message
}
# region: op:http_get
$Operations['http_get'] = {
    param($Req)
    $uri = New-Object -TypeName System.Uri -ArgumentList $Req.url
    Assert-Allowed -Condition ((@('localhost', '127.0.0.1', '[::1]') -contains $uri.Host) -and $uri.UserInfo -eq '') -Message "url '$($Req.url)' is not a loopback URL"
    if ($uri.Scheme -eq 'https') {
        [System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor [System.Net.SecurityProtocolType]::Tls12
    }
    $webRequest = [System.Net.HttpWebRequest][System.Net.WebRequest]::Create($uri)
    $webRequest.Timeout = $Req.timeout_ms; $webRequest.ReadWriteTimeout = $Req.timeout_ms
    $webRequest.AllowAutoRedirect = $false; $webRequest.KeepAlive = $false; $webRequest.Proxy = $null
    # Whatever listens on the port may not be the Port Service: never hand it the admin's credentials.
    $webRequest.UseDefaultCredentials = $false; $webRequest.Credentials = $null
    try { $response = $webRequest.GetResponse() } catch {
        $response = $null
        for ($item = $_.Exception; $null -ne $item -and $null -eq $response; $item = $item.InnerException) {
            if ($item -is [System.Net.WebException]) { $response = $item.Response }
        }
        if ($null -eq $response) { return @{ ok = $true; status = $null; body = $null; error = (Get-NoAnswerReason -Exception $_.Exception) } }
    }
    try {
        $status = [int]$response.StatusCode
        $reader = [System.IO.StreamReader]::new($response.GetResponseStream(), [System.Text.Encoding]::UTF8)
        $buffer = New-Object -TypeName 'char[]' -ArgumentList 4096
        $body = [string]::new($buffer, 0, $reader.ReadBlock($buffer, 0, 4096))
    } finally { $response.Close() }
    return @{ ok = $true; status = $status; body = $body; error = $null }
}
